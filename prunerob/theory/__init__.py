"""Theory: the Bernoulli model, the bounds of Theorems 1-2 and Proposition 1, the trade-off and
Algorithm 1 (Secs. 3-5, Apps. A-G), symbolic checks and the transformer of Lemma 1.
"""
