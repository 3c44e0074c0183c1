"""Page studies: the computations behind the book's experiment pages, producing tidy tables.

They combine :mod:`prunerob.engine`, :mod:`prunerob.theory` and :mod:`prunerob.core`, and hand
their tables to :mod:`prunerob.analysis` and :mod:`prunerob.render`.
"""
