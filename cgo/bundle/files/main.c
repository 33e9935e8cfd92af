/* main.c: the entry point of msrtrain linked from the GPU bundle. The Go side
 * is a C archive (libmsrtrain.a) whose exported msrtrain_main runs the
 * command line and exits with its status. */
#ifdef __cplusplus
extern "C"
#endif
    void
    msrtrain_main(void);

int main(void) {
  msrtrain_main();
  return 0;
}
