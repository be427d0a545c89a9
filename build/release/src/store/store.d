build/release/src/store/store.o: src/store/store.c src/store/store.h \
 src/common/reactor.h src/common/util.h
src/store/store.h:
src/common/reactor.h:
src/common/util.h:
