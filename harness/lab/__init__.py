"""The lab: the simulated VPC (vpc namespace) and the function's sandbox namespace."""
