-- Rate-limit budgets shared by the replicas of one PostgreSQL database: a
-- subject's theoretical arrival time (GCRA), in microseconds of the
-- database's clock. SQLite gateways are one process and keep their budgets
-- in memory; the table exists so both schemas stay alike.
CREATE TABLE rate_budgets (
    subject TEXT PRIMARY KEY,
    tat_us  INTEGER NOT NULL
);
