-- The account each step was published with (its decisions saw it): with the bars, participants and
-- signals already stored, an agent whose checkpoint is older than what a long-running deployment
-- keeps in memory is replayed from here. Steps stored before have none (NULL) and cannot be.
ALTER TABLE steps ADD COLUMN opened jsonb;
