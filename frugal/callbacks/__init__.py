"""Lightning callbacks: budget enforcement, live budget view, run recording, sparsity."""
