//! Test support: SDK clients whose calls are answered by aws-smithy-mocks rules, for the operations the
//! moto emulator lacks.

/// A client whose calls are answered by `rules` (aws-smithy-mocks' `mock_client!` needs newer SDK crates).
macro_rules! mocked {
    ($krate:ident, $rules:expr) => {
        mocked!($krate, $rules, |c| c)
    };
    ($krate:ident, $rules:expr, $customize:expr) => {{
        let rules: &[&aws_smithy_mocks::Rule] = $rules;
        let mut interceptor =
            aws_smithy_mocks::MockResponseInterceptor::new().rule_mode(aws_smithy_mocks::RuleMode::MatchAny);
        for r in rules {
            interceptor = interceptor.with_rule(r);
        }
        let customize: fn($krate::config::Builder) -> $krate::config::Builder = $customize;
        $krate::Client::from_conf(
            customize(
                $krate::Config::builder()
                    .with_test_defaults()
                    .region(aws_types::region::Region::new("ap-southeast-1"))
                    .http_client(aws_smithy_mocks::create_mock_http_client())
                    .interceptor(interceptor),
            )
            .build(),
        )
    }};
}

pub(crate) use mocked;
