"""People: managers assigned to grids, the roster workbook."""
