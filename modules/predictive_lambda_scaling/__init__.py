"""Pattern 3: published inference function whose alias's provisioned concurrency is scaled and scheduled."""
