"""One queue per person: the dispatcher answers each person's events in order, from the store that keeps them."""
