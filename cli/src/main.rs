fn main() {
    brisk_runtime::init::run_if_init();
}
