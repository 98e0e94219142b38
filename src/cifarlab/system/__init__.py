"""What cifarlab needs to know of the machine: cores, running trainings, live processes."""
