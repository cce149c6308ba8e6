"""taskapi: a contract-first REST API for user accounts and their tasks."""
