//! PostgreSQL over TLS: `sslmode` in the URL is honoured, with a CA given by `sslrootcert`.
//! The test makes a CA and a server certificate for 127.0.0.1 (openssl), points the local
//! PostgreSQL at them (superuser: `ALTER SYSTEM`, reload), connects, and puts the server's
//! settings back.

use std::path::Path;
use std::process::Command;

use handoff_store::{Store, StoreOptions};
use handoff_testdb::{Backend, postgres_admin_url, skip};
use sea_orm::{ConnectionTrait, Statement};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed to make the test's certificates");
    assert!(
        status.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`, readable by PostgreSQL.
fn certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=handoff test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
    // PostgreSQL reads its key only if no one else may.
    for (file, mode) in [("server.key", "600"), ("server.pem", "644")] {
        let _ = Command::new("chown")
            .args(["postgres:postgres", &dir.join(file).display().to_string()])
            .status();
        let _ = Command::new("chmod").args([mode, &dir.join(file).display().to_string()]).status();
    }
    let _ = Command::new("chmod").args(["755", &dir.display().to_string()]).status();
}

/// Runs `sql` on the server's maintenance database (which `Store` refuses to open).
async fn admin(sql: &str) {
    let admin = sea_orm::Database::connect(postgres_admin_url()).await.unwrap();
    admin.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = admin.close().await;
}

async fn uses_tls(url: &str) -> Result<bool, String> {
    let store = Store::connect(url, &StoreOptions::default()).await.map_err(|e| e.to_string())?;
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no row")?;
    row.try_get::<bool>("", "ssl").map_err(|e| e.to_string())
}

#[tokio::test]
async fn postgres_over_tls_honours_sslmode() {
    if skip(Backend::Postgres) {
        return;
    }
    let dir = Path::new("/var/lib/postgresql/handoff-test-tls");
    certificates(dir);
    let cert = dir.join("server.pem").display().to_string();
    let key = dir.join("server.key").display().to_string();
    admin("ALTER SYSTEM SET ssl = on").await;
    admin(&format!("ALTER SYSTEM SET ssl_cert_file = '{cert}'")).await;
    admin(&format!("ALTER SYSTEM SET ssl_key_file = '{key}'")).await;
    admin("SELECT pg_reload_conf()").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let db = handoff_testdb::TestDatabase::create(Backend::Postgres).await;
    let base = db.url().to_owned();
    let join = if base.contains('?') { '&' } else { '?' };
    let ca = dir.join("ca.pem").display().to_string();
    let verified = uses_tls(&format!("{base}{join}sslmode=verify-full&sslrootcert={ca}")).await;
    let required = uses_tls(&format!("{base}{join}sslmode=require")).await;
    let untrusted = uses_tls(&format!("{base}{join}sslmode=verify-full")).await;
    let plain = uses_tls(&base).await;

    // The server's own settings back, whatever the outcome.
    admin("ALTER SYSTEM RESET ssl_cert_file").await;
    admin("ALTER SYSTEM RESET ssl_key_file").await;
    admin("ALTER SYSTEM RESET ssl").await;
    admin("SELECT pg_reload_conf()").await;

    assert_eq!(verified, Ok(true), "verify-full with the test's CA");
    assert_eq!(required, Ok(true), "require");
    let refused = untrusted.expect_err("a CA the system does not trust is refused");
    assert!(refused.contains("TLS"), "{refused}");
    assert_eq!(plain, Ok(false), "no sslmode: no TLS");
}
