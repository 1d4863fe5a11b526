"""Conversation analytics: the second system of the original design, as its own asset group."""
