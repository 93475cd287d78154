"""低压到片: workload, the neighbour graph, the balanced contiguous partition, grids."""
