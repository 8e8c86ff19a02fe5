"""Review: annotators approve, edit or reject teacher feedback in queues assigned to them."""
