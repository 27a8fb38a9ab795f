"""Script engines (task ``script``): draft a project from a chapter with an LLM (see ``base``, ``vendors``)."""
