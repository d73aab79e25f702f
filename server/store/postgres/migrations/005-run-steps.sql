-- Each step's outcome and its part of the log (JSON, as the runner records it in its state file).
ALTER TABLE runs ADD COLUMN steps TEXT;
