-- Back to version 1: the author's name moves back into each note.
ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT '';
UPDATE notes SET author = (SELECT name FROM authors WHERE authors.id = notes.author_id);
ALTER TABLE notes DROP COLUMN author_id;
DROP TABLE authors;
