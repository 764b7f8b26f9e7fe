"""Pattern 5: Application Load Balancer in front of an inference fleet (stack `inference-load-balancing`)."""
