"""Storage back-ends: the vector store seam (Chroma) and the SQLite document store."""
