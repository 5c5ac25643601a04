"""`siyu import members FILE` and `siyu import orders FILE`: a brand's CRM or till export
(CSV or XLSX) read row by row into our members and orders.

- fields.py: the fields each kind of import knows and the headers they are found under;
- reader.py: the file, streamed: header and rows with the line numbers the file counts;
- rows.py: one cell's text into a typed value (dates, lunar birthdays, amounts…);
- columns.py: which column of the file holds each field (flags, configuration, usual headers);
- run.py: the import itself, start to end: file opened, columns found, report returned;
- members.py, orders.py: each kind's rows checked and written;
- batches.py: what both share: the import under way and its rows a chunk per transaction.
"""
