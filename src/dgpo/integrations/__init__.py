"""Adapters to training engines: ``trl`` (DGPOTrainer) and ``verl`` (the plugin). Each imports its engine; the
core never imports them."""
