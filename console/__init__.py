"""The staff console, the public pages and the department JSON API."""
