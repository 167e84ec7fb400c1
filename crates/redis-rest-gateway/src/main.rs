//! `redis-rest-gateway --listen 127.0.0.1:8080 --redis redis://127.0.0.1:6379 --token T`

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    redis_rest_gateway::main_entry()
}
