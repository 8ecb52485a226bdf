//! The live source, reached so that a drill cannot hurt it: credentials from one place (environment,
//! file, Secrets Manager, an RDS IAM token, or the source instance itself) kept in memory only, TLS
//! with the server's identity checked (against `ca-bundle`, else the system's trust store; `require`
//! only as written, and then a password only through SCRAM with channel binding), and sessions bounded by
//! `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout`, named with the run id,
//! whose running query is cancelled on the server when a check gives up.

use std::time::Duration;

use crate::config::{RestoreSpec, SecretRef, SourceSpec, TlsSpec};
use crate::pg;
use crate::report::model::Connection;

use super::error::DrillError;

/// How to log in to the source, resolved at run time; the password lives only here.
pub(crate) struct Login {
    host: String,
    port: u16,
    user: String,
    dbname: String,
    password: Option<String>,
    /// Where the password came from, for the report (never the value).
    pub(crate) credential: &'static str,
    pub(crate) tls: TlsSpec,
}

/// One bounded session: the client, and what it takes to cancel its running query.
pub(crate) struct Session {
    pub(crate) client: tokio_postgres::Client,
    pub(crate) canceller: pg::Canceller,
    pub(crate) record: Connection,
}

/// The bounds every source session carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) statement: Duration,
    pub(crate) lock: Duration,
    pub(crate) idle_in_transaction: Duration,
}

impl Bounds {
    /// `statement-timeout` from the file, else the per-check timeout (a check cannot run longer anyway).
    pub(crate) fn of(spec: &SourceSpec, check_timeout: Duration) -> Bounds {
        Bounds {
            statement: spec.statement_timeout.unwrap_or(check_timeout),
            lock: spec.lock_timeout,
            idle_in_transaction: check_timeout,
        }
    }

    fn sql(&self) -> String {
        format!(
            "set statement_timeout = '{}ms'; set lock_timeout = '{}ms'; set idle_in_transaction_session_timeout = '{}ms'",
            self.statement.as_millis(),
            self.lock.as_millis(),
            self.idle_in_transaction.as_millis()
        )
    }

    /// The same bounds, and read-only transactions, as startup options: every session made with them carries
    /// them from its first statement (a database stackdrill reads but does not own).
    pub(crate) fn read_only_options(&self) -> String {
        format!(
            "-c default_transaction_read_only=on -c statement_timeout={}ms -c lock_timeout={}ms \
             -c idle_in_transaction_session_timeout={}ms",
            self.statement.as_millis(),
            self.lock.as_millis(),
            self.idle_in_transaction.as_millis()
        )
    }

    pub(crate) fn describe(&self) -> String {
        let h = |d: Duration| humantime::format_duration(d).to_string();
        format!(
            "statement_timeout={} lock_timeout={} idle_in_transaction_session_timeout={}",
            h(self.statement),
            h(self.lock),
            h(self.idle_in_transaction)
        )
    }
}

/// Resolves where the source is and how to log in. `aws` is the drill's SDK config, needed for
/// `password-secret`, `iam-auth` and `from-instance` (loaded by the caller only then).
pub(crate) async fn login(
    spec: &SourceSpec,
    restore: &RestoreSpec,
    aws: Option<&aws_types::SdkConfig>,
) -> Result<Login, DrillError> {
    let need_aws =
        || aws.ok_or_else(|| DrillError::Secret("AWS credentials are needed to read the source's credentials".into()));
    let (mut host, mut port, mut user) = (spec.host.clone(), spec.port, spec.user.clone());
    let mut secret_id = match &spec.password {
        SecretRef::Secret(id) => Some(id.clone()),
        _ => None,
    };
    if spec.from_instance {
        let found = from_instance(restore, need_aws()?).await?;
        host = host.or(Some(found.host));
        port = port.or(Some(found.port));
        user = user.or(found.user);
        if secret_id.is_none() && matches!(spec.password, SecretRef::None) {
            secret_id = found.secret_arn;
        }
    }
    let host = host.ok_or_else(|| DrillError::Secret("the source instance reports no endpoint".into()))?;
    let port = port.unwrap_or(5432);
    let (password, credential) = match (&spec.password, secret_id) {
        (SecretRef::Env(var), _) => (
            Some(env_var(var).map_err(|_| DrillError::Secret(format!("environment variable `{var}` is not set")))?),
            "password-env",
        ),
        (SecretRef::File(p), _) => {
            // A FIFO, a device or a huge file is refused at once (never read until a deadline or memory ends).
            let text = crate::userfile::read_text_async(p, crate::userfile::SECRET_MAX, crate::userfile::Links::Follow)
                .await
                .map_err(|e| DrillError::Secret(format!("password-file: {e}")))?;
            (Some(text.trim_end_matches(['\n', '\r']).to_string()), "password-file")
        }
        (SecretRef::IamAuth, _) => {
            let user = user.as_deref().ok_or_else(|| DrillError::Secret("IAM authentication needs `user`".into()))?;
            (Some(iam_token(need_aws()?, &host, port, user).await?), "rds-iam-token")
        }
        (_, Some(id)) => {
            let secret = read_secret(need_aws()?, &id).await?;
            user = user.or(secret.username);
            (Some(secret.password), "secrets-manager")
        }
        (SecretRef::None | SecretRef::Secret(_), None) => (None, "none"),
    };
    let user = user.ok_or_else(|| DrillError::Secret("no user: give `source.user`".into()))?;
    Ok(Login { host, port, user, dbname: spec.dbname.clone(), password, credential, tls: spec.tls.clone() })
}

impl Login {
    /// The user and password, for a copy of the source that carries its roles (a restore testing plan's).
    pub(crate) fn into_credentials(self) -> (String, Option<String>) {
        (self.user, self.password)
    }

    /// `user@host:port/dbname`, without any secret.
    pub(crate) fn display(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }

    /// The same login at a replica's address, for the heavy read-only checks.
    pub(crate) fn at(&self, (host, port): &(String, u16)) -> Login {
        Login {
            host: host.clone(),
            port: *port,
            user: self.user.clone(),
            dbname: self.dbname.clone(),
            password: self.password.clone(),
            credential: self.credential,
            tls: self.tls.clone(),
        }
    }

    /// The connection settings of a session named `stackdrill/<run>`, password included.
    pub(crate) fn config(&self, run: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(application_name(run))
            .connect_timeout(Duration::from_secs(10));
        if let Some(p) = &self.password {
            c.password(p);
        }
        // Under `sslmode require`, `pg::connect_tls` demands SCRAM with channel binding (one rule for every
        // login, source and scratch alike).
        c
    }

    /// Opens a session named `stackdrill/<run>` with `bounds`, and records how it is protected.
    pub(crate) async fn connect(&self, run: &str, role: &str, bounds: Bounds) -> Result<Session, DrillError> {
        let c = self.config(run);
        let fail = |detail: String| DrillError::Source { endpoint: self.display(), detail };
        let client = pg::connect_tls(&c, &self.tls, None).await.map_err(|e| {
            if pg::is_tls_refused(&e) {
                fail(format!("{e}; the source must speak TLS (sslmode {})", self.tls.sslmode()))
            } else if pg::is_channel_binding_refused(&e) {
                fail(format!("{e}; {}", pg::CHANNEL_BINDING_HINT))
            } else if self.tls == TlsSpec::VerifyFullSystem && e.contains("certificate") {
                fail(format!(
                    "{e}; with no `sslmode` or `ca-bundle` the server's certificate must chain to the system's \
                     trust store (sslmode verify-full): give `ca-bundle` (e.g. the RDS global bundle)"
                ))
            } else {
                fail(e)
            }
        })?;
        client.batch_execute(&bounds.sql()).await.map_err(|e| fail(crate::drill::verify::db_error(&e)))?;
        let canceller = pg::Canceller::new(&client, &self.tls, None);
        let mut record = connection_record(&client, role, self.display(), &self.tls, self.credential).await;
        record.session = Some(bounds.describe());
        Ok(Session { client, canceller, record })
    }
}

/// The `application_name` of every session of run `run`: how `pg_stat_activity` shows it.
pub(crate) fn application_name(run: &str) -> String {
    format!("stackdrill/{run}")
}

/// How a connection is protected, as the server sees it (`pg_stat_ssl`), for the report.
pub(crate) async fn connection_record(
    client: &tokio_postgres::Client,
    role: &str,
    endpoint: String,
    tls: &TlsSpec,
    credential: &str,
) -> Connection {
    let row = client
        .query_opt("select ssl, version, cipher from pg_stat_ssl where pid = pg_backend_pid()", &[])
        .await
        .ok()
        .flatten();
    let (encrypted, version, cipher) = match row {
        Some(r) => (r.get::<_, Option<bool>>(0).unwrap_or(false), r.get(1), r.get(2)),
        // No pg_stat_ssl (a pooler, an old server): the client side still knows, since any mode but
        // disable refuses a connection that is not TLS.
        None => {
            let tls = *tls != TlsSpec::Disable;
            (tls, tls.then(|| "TLS (version not reported by the server)".to_string()), None)
        }
    };
    Connection {
        role: role.into(),
        endpoint,
        transport: "tcp".into(),
        sslmode: tls.sslmode().into(),
        tls_version: if encrypted { version } else { None },
        cipher: if encrypted { cipher } else { None },
        server_verified: encrypted && tls.verifies_identity(),
        hostname_verified: encrypted && tls.verifies_host(),
        credential: credential.into(),
        session: None,
    }
}

struct InstanceFacts {
    host: String,
    port: u16,
    user: Option<String>,
    secret_arn: Option<String>,
}

/// Endpoint, port, master user and managed master secret of the RDS instance or Aurora cluster the
/// drill restores from.
async fn from_instance(restore: &RestoreSpec, aws: &aws_types::SdkConfig) -> Result<InstanceFacts, DrillError> {
    let rds = aws_sdk_rds::Client::new(aws);
    let port = |p: Option<i32>| p.and_then(|p| u16::try_from(p).ok()).unwrap_or(5432);
    use crate::drill::restore::registry::{self, SourceInstance};
    match registry::kind(restore).source_instance() {
        Some(SourceInstance::Instance(name)) => {
            let out = rds
                .describe_db_instances()
                .db_instance_identifier(name)
                .send()
                .await
                .map_err(|e| crate::aws::classify("rds:DescribeDBInstances", &e))?;
            let i = out
                .db_instances()
                .first()
                .ok_or_else(|| DrillError::NotFound(format!("source instance `{name}` does not exist")))?;
            let ep = i.endpoint();
            Ok(InstanceFacts {
                host: ep.and_then(|e| e.address()).unwrap_or_default().to_string(),
                port: port(ep.and_then(|e| e.port())),
                user: i.master_username().map(str::to_string),
                secret_arn: i.master_user_secret().and_then(|s| s.secret_arn()).map(str::to_string),
            })
        }
        Some(SourceInstance::Cluster(name)) => {
            let out = rds
                .describe_db_clusters()
                .db_cluster_identifier(name)
                .send()
                .await
                .map_err(|e| crate::aws::classify("rds:DescribeDBClusters", &e))?;
            let c = out
                .db_clusters()
                .first()
                .ok_or_else(|| DrillError::NotFound(format!("source cluster `{name}` does not exist")))?;
            Ok(InstanceFacts {
                host: c.endpoint().unwrap_or_default().to_string(),
                port: port(c.port()),
                user: c.master_username().map(str::to_string),
                secret_arn: c.master_user_secret().and_then(|s| s.secret_arn()).map(str::to_string),
            })
        }
        None => {
            Err(DrillError::Refused("`from-instance` needs an aws-rds-instance or aws-aurora-cluster restore".into()))
        }
    }
}

struct SecretValue {
    username: Option<String>,
    password: String,
}

/// Reads a Secrets Manager secret: a JSON object with `password` (and `username`), as RDS-managed master
/// secrets are, or a plain string that is the password.
async fn read_secret(aws: &aws_types::SdkConfig, id: &str) -> Result<SecretValue, DrillError> {
    let sm = aws_sdk_secretsmanager::Client::new(aws);
    let out = sm
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| crate::aws::classify("secretsmanager:GetSecretValue", &e))?;
    let text = out
        .secret_string()
        .ok_or_else(|| DrillError::Secret(format!("secret `{id}` holds binary data, not a password")))?;
    parse_secret(text).map_err(|why| DrillError::Secret(format!("secret `{id}`: {why}")))
}

/// What is wrong with a secret's text; never the text itself.
#[derive(Debug, thiserror::Error)]
enum SecretFormatError {
    #[error("is not valid JSON")]
    NotJson,
    #[error("a JSON secret needs a string `password` field")]
    NoPassword,
}

fn parse_secret(text: &str) -> Result<SecretValue, SecretFormatError> {
    if !text.trim_start().starts_with('{') {
        return Ok(SecretValue { username: None, password: text.to_string() });
    }
    // Never echo the secret's text in an error: name what is wrong only.
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| SecretFormatError::NotJson)?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let password = field("password").ok_or(SecretFormatError::NoPassword)?;
    Ok(SecretValue { username: field("username"), password })
}

/// An RDS IAM authentication token for `user` at `host:port`, valid 15 minutes: a password, so it is
/// never logged.
async fn iam_token(aws: &aws_types::SdkConfig, host: &str, port: u16, user: &str) -> Result<String, DrillError> {
    use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config};
    let config = Config::builder()
        .hostname(host)
        .port(u64::from(port))
        .username(user)
        .expires_in(900)
        .build()
        .map_err(|e| DrillError::Secret(format!("cannot build the IAM token request: {e}")))?;
    let token = AuthTokenGenerator::new(config)
        .auth_token(aws)
        .await
        .map_err(|e| DrillError::Secret(format!("cannot sign an RDS IAM token: {e}")))?;
    Ok(token.as_str().to_string())
}

/// A drill's `password-env`: the one variable its file names (a documented exception to "the settings layer
/// reads the environment").
#[expect(clippy::disallowed_methods, reason = "a drill's `password-env` names its variable (documented)")]
fn env_var(name: &str) -> Result<String, std::env::VarError> {
    std::env::var(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_json_with_a_password_or_a_plain_string() {
        let s = parse_secret(r#"{"username":"app","password":"p'w\"x","engine":"postgres"}"#).unwrap();
        assert_eq!((s.username.as_deref(), s.password.as_str()), (Some("app"), "p'w\"x"));
        let s = parse_secret("just-a-password").unwrap();
        assert_eq!((s.username, s.password.as_str()), (None, "just-a-password"));
        let e = parse_secret(r#"{"username":"app","pass":"hunter2"}"#).err().unwrap().to_string();
        assert!(e.contains("`password`") && !e.contains("hunter2"), "{e}");
        let e = parse_secret(r#"{"password": hunter2"#).err().unwrap().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    /// The token follows the published signing rules for RDS IAM authentication: a SigV4 presigned
    /// `GET https://host:port/?Action=connect&DBUser=user` for service `rds-db`, valid 900 s, without
    /// the scheme.
    #[tokio::test]
    async fn iam_tokens_are_presigned_connect_urls() {
        let creds = aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(aws_types::region::Region::new("ap-southeast-1"))
            .load()
            .await;
        let token = iam_token(&aws, "db.abc.ap-southeast-1.rds.amazonaws.com", 5432, "drill").await.unwrap();
        assert!(
            token.starts_with("db.abc.ap-southeast-1.rds.amazonaws.com:5432/?Action=connect&DBUser=drill&"),
            "{token}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F",
            "%2Fap-southeast-1%2Frds-db%2Faws4_request",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=",
        ] {
            assert!(token.contains(part), "{part} missing from {token}");
        }
        assert!(!token.contains("https://") && !token.contains("secret"), "{token}");
    }
}
