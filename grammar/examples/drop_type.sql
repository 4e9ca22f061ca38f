-- Streams made with the type keep their columns' types.
DROP TYPE ADDRESS;
DROP TYPE IF EXISTS PERSON;
