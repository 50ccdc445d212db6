"""HTTP: the route table, request and response models, errors, identity, handlers and the OpenAPI document.
The only package that imports HTTP types (FastAPI, Starlette, azure.functions)."""
