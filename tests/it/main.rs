//! All integration tests, in one binary so the crate links once.

mod aws_drill;
mod config;
mod evidence;
mod harness;
mod iam_lint;
mod local_drill;
mod logical;
mod moto;
mod objects;
mod output;
mod plan;
mod production_safety;
mod proxy;
mod reliability;
mod schedule;
mod stack;
mod stack_aws;
mod supabase;
