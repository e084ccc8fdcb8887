"""What each route answers: one pydantic model per response shape, per context, so the
OpenAPI document names every shape (``XPublic`` one object, ``XPage`` a page of them)."""
