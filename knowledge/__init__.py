"""The knowledge base: what a city hotline is asked most, and the answers (DESIGN.md)."""
