-- Version 1: notes, each with its author's name.
CREATE TABLE notes (
  id INTEGER PRIMARY KEY,
  body TEXT NOT NULL,
  author TEXT NOT NULL
);
