"""高压到段: the feeder graph, its segments and their owners."""
