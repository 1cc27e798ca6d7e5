-- Version 2: authors get a table of their own; each note points to its author (data moved).
CREATE TABLE authors (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
INSERT INTO authors (id, name)
  SELECT ROW_NUMBER() OVER (ORDER BY author), author FROM (SELECT DISTINCT author FROM notes) AS names;
ALTER TABLE notes ADD COLUMN author_id INTEGER;
UPDATE notes SET author_id = (SELECT id FROM authors WHERE authors.name = notes.author);
ALTER TABLE notes DROP COLUMN author;
