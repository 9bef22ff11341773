//! E-mail for notifications: SMTP settings from the config file's `smtp` object and the
//! `PLUGGEDIN_SMTP_*` environment variables (which win, field by field), and a [`Mailer`] that
//! sends one message per notification through lettre (rustls on `ring`). Without a host there is
//! no mailer, and the notification tool says plainly that no mail was sent.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use crate::control::Notification;

/// How long one delivery may take (connect, TLS, hand-over).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("smtp settings: {field}: {message}")]
    Settings { field: String, message: String },
    #[error("cannot build the email: {0}")]
    Build(String),
    #[error("SMTP delivery failed: {0}")]
    Send(String),
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on loopback or a trusted network.
    None,
}

pub use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
}

impl SmtpSettings {
    /// The settings from the config file's `smtp` object and the environment; `None` when no
    /// host is set anywhere.
    pub fn resolve(
        file: Option<&Value>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<SmtpSettings>, MailError> {
        let error = |field: &str, message: &str| MailError::Settings {
            field: field.to_owned(),
            message: message.to_owned(),
        };
        let file_value = |key: &str| -> Result<Option<String>, MailError> {
            match file.and_then(|smtp| smtp.get(key)) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(Value::Number(number)) => Ok(Some(number.to_string())),
                Some(Value::Array(items)) if key == "to" => Ok(Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                )),
                Some(_) => Err(error(&format!("smtp.{key}"), "must be a string")),
            }
        };
        let get = |key: &str, var: &str| -> Result<Option<String>, MailError> {
            match env(var).filter(|value| !value.trim().is_empty()) {
                Some(value) => Ok(Some(value)),
                None => file_value(key),
            }
        };
        if let Some(file) = file
            && !file.is_object()
        {
            return Err(error("smtp", "must be an object"));
        }
        let Some(host) = get("host", "PLUGGEDIN_SMTP_HOST")? else {
            return Ok(None);
        };
        let security = match get("security", "PLUGGEDIN_SMTP_SECURITY")?.as_deref() {
            None | Some("starttls") => Security::StartTls,
            Some("tls") => Security::Tls,
            Some("none") => Security::None,
            Some(_) => {
                return Err(error(
                    "smtp.security",
                    "must be \"starttls\", \"tls\" or \"none\"",
                ));
            }
        };
        let port = match get("port", "PLUGGEDIN_SMTP_PORT")? {
            Some(port) => port
                .parse()
                .map_err(|_| error("smtp.port", "must be a port number"))?,
            None => match security {
                Security::Tls => 465,
                Security::StartTls => 587,
                Security::None => 25,
            },
        };
        let from = get("from", "PLUGGEDIN_SMTP_FROM")?
            .ok_or_else(|| error("smtp.from", "is required when a host is set"))?;
        let to: Vec<String> = get("to", "PLUGGEDIN_SMTP_TO")?
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .map(str::to_owned)
            .collect();
        if to.is_empty() {
            return Err(error("smtp.to", "is required when a host is set"));
        }
        Ok(Some(SmtpSettings {
            host,
            port,
            security,
            username: get("username", "PLUGGEDIN_SMTP_USERNAME")?,
            password: get("password", "PLUGGEDIN_SMTP_PASSWORD")?.map(Secret::new),
            from,
            to,
        }))
    }
}

/// Sends notifications by e-mail.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings) -> Result<Mailer, MailError> {
        let address = |field: &str, text: &str| -> Result<Mailbox, MailError> {
            text.parse().map_err(|error| MailError::Settings {
                field: field.to_owned(),
                message: format!("\"{text}\" is not an e-mail address: {error}"),
            })
        };
        let from = address("smtp.from", &settings.from)?;
        let to = settings
            .to
            .iter()
            .map(|to| address("smtp.to", to))
            .collect::<Result<_, _>>()?;
        let tls_error = |error: lettre::transport::smtp::Error| MailError::Settings {
            field: "smtp.host".into(),
            message: error.to_string(),
        };
        let mut builder = match settings.security {
            Security::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                    .map_err(tls_error)?
            }
            Security::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host).map_err(tls_error)?
            }
            Security::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
        }
        .port(settings.port)
        .timeout(Some(SEND_TIMEOUT));
        if let Some(username) = &settings.username {
            let password = settings
                .password
                .as_ref()
                .map(|secret| secret.expose().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            to,
        })
    }

    /// Where the e-mails go.
    pub fn recipients(&self) -> Vec<String> {
        self.to.iter().map(ToString::to_string).collect()
    }

    /// Sends one notification: subject `<title> - Plugged.in`, the message as plain text.
    pub async fn send(&self, notification: &Notification) -> Result<(), MailError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(format!("{} - Plugged.in", notification.title))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let body = format!(
            "{}\n\nSeverity: {}\nNotification ID: {}\n",
            notification.message,
            notification.severity.as_str(),
            notification.id
        );
        let message = message
            .body(body)
            .map_err(|error| MailError::Build(error.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|error| MailError::Send(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn environment_wins_over_the_config_file_field_by_field() {
        let file =
            json!({"host": "mail.example.com", "from": "a@example.com", "to": ["b@example.com"]});
        let env = |var: &str| (var == "PLUGGEDIN_SMTP_PORT").then(|| "2525".to_owned());
        let settings = SmtpSettings::resolve(Some(&file), env).unwrap().unwrap();
        assert_eq!(settings.host, "mail.example.com");
        assert_eq!(settings.port, 2525);
        assert_eq!(settings.security, Security::StartTls);
        assert_eq!(settings.to, vec!["b@example.com"]);
    }

    #[test]
    fn no_host_means_no_mail_and_bad_fields_are_named() {
        assert!(SmtpSettings::resolve(None, |_| None).unwrap().is_none());
        let file =
            json!({"host": "h", "from": "a@example.com", "to": "b@example.com", "security": "ssl"});
        let error = SmtpSettings::resolve(Some(&file), |_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("smtp.security"), "{error}");
        let file = json!({"host": "h", "to": "b@example.com"});
        let error = SmtpSettings::resolve(Some(&file), |_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("smtp.from"), "{error}");
    }

    #[test]
    fn the_password_never_prints() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "[redacted]");
    }
}
