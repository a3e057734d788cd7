/* The host's main(): ESP-IDF starts app_main from its own main task. */
void app_main(void);

int main(void) {
  app_main();
  return 0;
}
