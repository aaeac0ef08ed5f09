"""The departments' JSON API (`/api/v1`), described by `api/openapi.yaml`; Open311 GeoReport v2
joins it here."""
