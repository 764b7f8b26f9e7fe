"""Pattern 2: SQS backlog drives an EC2 Auto Scaling group of workers (stack `queue-depth-scaling`)."""
