"""The edge disk: what may be written (the reserve), what may be deleted (receipted segments only,
oldest first, under pressure or past local retention), and what the spool holds (backlog,
measured recording rate)."""
