"""Policies: the tanh-Gaussian learner and the behaviour policies that collect data."""
