"""The anchored reader's parts (`questionnaire.reader.read_blocks` puts them together): lines,
anchors, options, tables and the reader's settings, a module each."""
