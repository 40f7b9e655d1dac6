"""Uploading recorded segments to the collector: a tus 1.0 client, the collector's pinned receipt
key, and the uploader that works through the spool catalog until every segment has a verified
receipt (only then may the disk policy delete the local copy)."""
