"""Text-adventure tasks: generated TextWorld games, Colossal Cave, and Jericho games."""
