"""The rules of the domain. Functions take a session and plain values, keyword-only, and raise
`taskapi.errors`; they never commit and know nothing of HTTP."""
