"""validator: the guide's step 3 as a service."""
