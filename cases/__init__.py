"""The domain: calls, cases, recordings and their audit trail, and the lifecycle services."""
