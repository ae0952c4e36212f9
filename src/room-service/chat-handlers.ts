/**
 * Each chat request type bound to the function that answers it. CHAT_REQUESTS (chat-frames.ts)
 * declares a type's subject, answer and check; this table is the other half, and the type system
 * holds the two to the same set of types: a new frame type is one declaration plus its handler.
 */
import type { ChatCaller, ChatReply } from '../shared/protocol/chat-bus-messages.js';
import type { ChatClientFrameType, ChatFrameOf } from '../shared/protocol/chat-frames.js';

export type ChatHandler<K extends ChatClientFrameType> = (caller: ChatCaller, frame: ChatFrameOf<K>) => Promise<ChatReply>;
export type ChatHandlers = { readonly [K in ChatClientFrameType]: ChatHandler<K> };

/** Answers a checked frame with its type's handler. */
export function handleChatFrame<K extends ChatClientFrameType>(handlers: ChatHandlers, caller: ChatCaller, frame: ChatFrameOf<K>): Promise<ChatReply> {
  return (handlers[frame.t as K] as ChatHandler<K>)(caller, frame);
}
