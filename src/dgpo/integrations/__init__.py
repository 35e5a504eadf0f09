"""Adapters to other training engines (verl). Each imports its engine; nothing here is imported by the core."""
