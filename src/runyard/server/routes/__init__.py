"""The API's routes, one module per area (all mounted under ``/api/v1``)."""
