//! PostgreSQL: the application's next `session_number` as a function, for the one-statement
//! import.
//!
//! Concurrent imports into one application queue on its counter row. When a waiting `UPDATE`
//! gets the row, PostgreSQL re-checks it (`EvalPlanQual`), and to do so starts a copy of every
//! part of the statement the `UPDATE` belongs to: inside the import's data-modifying `WITH`,
//! a score of parts, for each waiter, each time. Called as a function, the `UPDATE` is a statement
//! of its own, whose re-check is one index lookup; its row lock is still held until the import
//! commits. It is PL/pgSQL, which keeps the `UPDATE`'s plan for the connection (a SQL-language
//! function is planned again in every statement that calls it). SQLite, which writes one
//! transaction at a time, needs none.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    on_postgres(
        manager,
        "CREATE FUNCTION next_session_number(application uuid) RETURNS bigint \
         LANGUAGE plpgsql VOLATILE AS $$ \
         DECLARE number bigint; \
         BEGIN \
         UPDATE applications SET last_session_number = last_session_number + 1 \
         WHERE id = application RETURNING last_session_number INTO number; \
         RETURN number; \
         END $$",
    )
    .await
} down {
    on_postgres(manager, "DROP FUNCTION next_session_number(uuid)").await
});
