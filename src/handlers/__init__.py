"""One module per resource, one function per operationId: unpack, call a service, reply."""
