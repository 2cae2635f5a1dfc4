#include <stdio.h>
int main(void) { puts("svc"); return 0; }
