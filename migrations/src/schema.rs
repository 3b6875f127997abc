//! Column helpers shared by the migrations, so that each type is spelled once per backend.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// A UUID primary key.
pub fn uuid_pk(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().not_null().primary_key().take()
}

/// A non-null UUID.
pub fn uuid(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().not_null().take()
}

/// A nullable UUID.
pub fn uuid_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().null().take()
}

/// A surrogate row id that the database assigns: `bigserial` on PostgreSQL, the rowid alias
/// (`integer primary key autoincrement`) on SQLite, where only `integer` may be one.
pub fn row_id(backend: DatabaseBackend, name: &'static str) -> ColumnDef {
    let mut col = ColumnDef::new(name);
    match backend {
        DatabaseBackend::Sqlite => col.integer(),
        _ => col.big_integer(),
    };
    col.not_null().auto_increment().primary_key().take()
}

/// Non-null text.
pub fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().not_null().take()
}

/// Nullable text.
pub fn text_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().null().take()
}

/// A non-null timestamp with time zone.
pub fn timestamp(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).timestamp_with_time_zone().not_null().take()
}

/// A nullable timestamp with time zone.
pub fn timestamp_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).timestamp_with_time_zone().null().take()
}

/// A non-null 64-bit integer.
pub fn big_integer(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().take()
}

/// A foreign key from `from.column` to `to.id` that deletes with its parent.
pub fn cascade(
    from: &'static str, column: &'static str, to: &'static str,
) -> ForeignKeyCreateStatement {
    foreign_key(from, column, to, ForeignKeyAction::Cascade)
}

/// A foreign key from `from.column` to `to.id` that refuses to delete a referenced parent.
pub fn restrict(
    from: &'static str, column: &'static str, to: &'static str,
) -> ForeignKeyCreateStatement {
    foreign_key(from, column, to, ForeignKeyAction::Restrict)
}

fn foreign_key(
    from: &'static str, column: &'static str, to: &'static str, on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from}_{column}"))
        .from(from, column)
        .to(to, "id")
        .on_delete(on_delete)
        .take()
}

/// An index over `columns` of `table`, unique or not, named after them.
pub fn index(table: &'static str, columns: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(format!("ix_{table}_{}", columns.join("_"))).table(table);
    for column in columns {
        index.col(*column);
    }
    if unique {
        index.unique();
    }
    index.take()
}

/// Adds `columns` to `table`, one statement each: SQLite alters a table one column at a time.
pub async fn add_columns(
    manager: &SchemaManager<'_>, table: &'static str, columns: impl IntoIterator<Item = ColumnDef>,
) -> Result<(), DbErr> {
    for column in columns {
        manager.alter_table(Table::alter().table(table).add_column(column).take()).await?;
    }
    Ok(())
}

/// Drops `columns` of `table`, one statement each, in the order given.
pub async fn drop_columns(
    manager: &SchemaManager<'_>, table: &'static str, columns: &[&'static str],
) -> Result<(), DbErr> {
    for column in columns {
        manager.alter_table(Table::alter().table(table).drop_column(*column).take()).await?;
    }
    Ok(())
}

/// Creates the index of `table` over `columns` ([`index`]), unique or not.
pub async fn create_index(
    manager: &SchemaManager<'_>, table: &'static str, columns: &[&'static str], unique: bool,
) -> Result<(), DbErr> {
    manager.create_index(index(table, columns, unique)).await
}

/// Drops the index of `table` over `columns` that [`index`] named.
pub async fn drop_index(
    manager: &SchemaManager<'_>, table: &'static str, columns: &[&'static str],
) -> Result<(), DbErr> {
    manager
        .drop_index(
            Index::drop().name(format!("ix_{table}_{}", columns.join("_"))).table(table).to_owned(),
        )
        .await
}

/// Drops `tables`, in the order given.
pub async fn drop_tables(
    manager: &SchemaManager<'_>, tables: &[&'static str],
) -> Result<(), DbErr> {
    for table in tables {
        manager.drop_table(Table::drop().table(*table).take()).await?;
    }
    Ok(())
}

/// Runs `sql` on PostgreSQL only; SQLite needs nothing of it.
pub async fn on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    manager.get_connection().execute_unprepared(sql).await.map(drop)
}
